package io.ringserve.worker.reference;

/**
 * Where one sequence's keys and values live. Position p of the sequence is row {@code slot(p)} of the
 * per-layer arrays (rows of width Hkv·d): contiguous for {@link KvCache}, block-table indirection for
 * {@link PagedKvCache}.
 */
public interface SequenceKv {
    int slot(int position);

    /** @return (rows, Hkv·d) keys after QK-norm and RoPE */
    float[] keys(int layer);

    /** @return (rows, Hkv·d) values as projected */
    float[] values(int layer);
}
