"""Layer A: versioned forbidden-pattern rules over normalized text, and their evaluation."""
