"""Physics operators: centered orthonormal FFTs (and, later, NUFFT and the encoding operators)."""
