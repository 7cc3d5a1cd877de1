"""Plain numpy references of the compiled kernels, written for clarity rather than speed."""
