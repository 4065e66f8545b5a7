"""HTTP plumbing shared by every HTTP function, and one route module per HTTP function."""
