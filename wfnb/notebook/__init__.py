"""The notebook layer: magics, live display and (later) the state inspector."""
