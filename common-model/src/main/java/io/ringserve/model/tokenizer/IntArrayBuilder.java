package io.ringserve.model.tokenizer;

import java.util.Arrays;

/** A growable int array, to collect token ids without boxing. */
final class IntArrayBuilder {

    private int[] data;
    private int size;

    IntArrayBuilder(int capacity) {
        data = new int[Math.max(capacity, 4)];
    }

    IntArrayBuilder add(int value) {
        if (size == data.length) {
            data = Arrays.copyOf(data, size * 2);
        }
        data[size++] = value;
        return this;
    }

    IntArrayBuilder addAll(int[] values) {
        if (size + values.length > data.length) {
            data = Arrays.copyOf(data, Math.max(size * 2, size + values.length));
        }
        System.arraycopy(values, 0, data, size, values.length);
        size += values.length;
        return this;
    }

    void set(int index, int value) {
        data[index] = value;
    }

    int size() {
        return size;
    }

    int[] toArray() {
        return Arrays.copyOf(data, size);
    }
}
