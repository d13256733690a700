"""What the GitHub workflows need beyond `make`: the PR comment and the run link."""
