package io.ringserve.worker.cli;

/** A command line that cannot be run as written; the CLI prints the message and the usage, exit 2. */
final class UsageException extends RuntimeException {
    UsageException(String message) {
        super(message);
    }
}
