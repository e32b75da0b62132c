"""What Flux's controllers decide, reproduced offline (policy, setters, automation, commit messages)."""
