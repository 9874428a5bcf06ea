"""CLIP itself: OpenAI's model code, loading weights, the promptable backbone, prompt learners and couplings."""
