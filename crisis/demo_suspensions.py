STEPS: list = []
