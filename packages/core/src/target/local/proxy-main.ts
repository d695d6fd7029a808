// proxy process entry (built by the local target work)
