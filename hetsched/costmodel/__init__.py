"""hetsched.costmodel."""
