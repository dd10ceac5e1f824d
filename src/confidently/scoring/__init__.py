"""Texts → :class:`~confidently.types.Scores`: the classifier (backend + task), checkpointed runs over
many texts, and several adapters' texts in one forward pass."""
