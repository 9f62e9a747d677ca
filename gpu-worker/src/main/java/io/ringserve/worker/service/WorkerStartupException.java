package io.ringserve.worker.service;

/** The worker cannot start because of one configuration property; {@link WorkerStartupFailureAnalyzer} reports it. */
public final class WorkerStartupException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String property;

    public WorkerStartupException(String property, String message, Throwable cause) {
        super(property + ": " + message, cause);
        this.property = property;
    }

    /** The property at fault, e.g. {@code ringserve.worker.backend}. */
    public String property() {
        return property;
    }
}
