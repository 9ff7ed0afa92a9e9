"""hetsched.partition."""
