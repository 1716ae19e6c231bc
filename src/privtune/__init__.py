"""privtune: private fine-tuning of small open language models on your own data, on your own hardware."""

__version__ = "0.1.0"
