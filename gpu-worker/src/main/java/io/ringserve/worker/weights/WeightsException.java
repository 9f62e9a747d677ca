package io.ringserve.worker.weights;

/**
 * A checkpoint could not be opened or a tensor could not be served from it.
 *
 * <p>The message always names the file involved and, where one applies, the tensor, so that a
 * broken download or a loader/checkpoint name mismatch can be diagnosed from the log line alone.
 */
public final class WeightsException extends RuntimeException {

    /** @param message what went wrong, naming the file and tensor */
    public WeightsException(String message) {
        super(message);
    }

    /**
     * @param message what went wrong, naming the file and tensor
     * @param cause   the underlying I/O or parse failure
     */
    public WeightsException(String message, Throwable cause) {
        super(message, cause);
    }
}
