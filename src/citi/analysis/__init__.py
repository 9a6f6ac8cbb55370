"""Analyses of the paper's Sec. 2 and appendix; each writes a JSON and a PNG."""
