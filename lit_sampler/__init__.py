"""lit_sampler: posterior sampling with pre-trained score-based generative models (NCSNv2,
annealed Langevin dynamics) as a PyTorch Lightning prediction module."""

__version__ = "0.3.0"
