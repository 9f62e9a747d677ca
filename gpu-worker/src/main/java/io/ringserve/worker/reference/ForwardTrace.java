package io.ringserve.worker.reference;

/** Named tap points of the forward pass, for golden tests and debugging. Both methods get copies. */
public interface ForwardTrace {
    /**
     * The residual stream after the embedding (index 0) and after each layer (index layer + 1).
     *
     * @param x (T, D)
     */
    default void hidden(int index, float[] x, int tokens) {
    }

    /**
     * The routing decision of a MoE layer.
     *
     * @param expertIds (T, K) in descending biased-score order
     */
    default void routes(int layer, int[][] expertIds) {
    }
}
