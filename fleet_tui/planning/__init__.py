"""Planning: what each device must pull for a target image, grouped, with costs."""
