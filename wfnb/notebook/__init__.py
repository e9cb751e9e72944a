"""The notebook layer: the %workflow magics, the live display, and the state inspector."""
