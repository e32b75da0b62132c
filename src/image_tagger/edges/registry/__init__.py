"""The registry edge: `credentials` (where an account comes from), `session` (talking to a registry),
`tags` (the tag source Flux's predictions read, the two joined)."""
