"""Secret rotation: the engine that runs rotations, the functions it invokes, built-in rotators."""
