"""confidently: a language model as a classifier whose confidence numbers can be trusted."""

__version__ = "0.1.0"
