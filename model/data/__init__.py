"""Training data made here: procedural pieces (``compose``) rendered to audio, stems and metadata (``render``, ``synth``)."""
