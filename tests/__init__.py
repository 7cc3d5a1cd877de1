"""xadt's test suite (a package, so benches can import the kernel references)."""
