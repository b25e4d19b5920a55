"""Audio at the edge: G.711 mu-law, and stream resamplers between the line, the pipeline and TTS."""
