"""hetsched.exec."""
