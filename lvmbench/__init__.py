"""lvmbench: train latent vector models through a fixed recipe and score them
end to end against a FAISS index, with baselines and integrity checks."""

__version__ = "0.1.0"
