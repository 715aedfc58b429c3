"""Built-in skills: one module per skill."""
