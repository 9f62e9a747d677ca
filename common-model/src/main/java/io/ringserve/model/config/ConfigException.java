package io.ringserve.model.config;

/** A model configuration file that cannot be used; the message names the file and the JSON key. */
public final class ConfigException extends RuntimeException {
    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
