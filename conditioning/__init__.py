"""Turning user inputs (artist, genre, lyrics, MIDI, stems) into tensors."""
