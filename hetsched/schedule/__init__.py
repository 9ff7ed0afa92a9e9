"""hetsched.schedule."""
