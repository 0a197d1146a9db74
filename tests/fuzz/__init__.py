"""The fuzz suite: OpenAI's spec, a corpus of bad input, generated requests, and their figures."""
