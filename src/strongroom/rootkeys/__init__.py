"""Root keys of a deployment: sources chosen by config.toml, sealing, unsealing, online rekey."""
