"""Drop-in APIs of other tools and courses, backed by gradlab's kernels."""
