"""Model loading: the registry of supported models and the verified local cache of their files."""
