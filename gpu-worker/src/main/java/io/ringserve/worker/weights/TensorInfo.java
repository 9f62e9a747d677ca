package io.ringserve.worker.weights;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

/**
 * Where one tensor lives on disk.
 *
 * @param name       the tensor name, e.g. {@code model.layers.0.mlp.gate_proj.weight}
 * @param dtype      the element type
 * @param shape      dimensions, outermost first (row-major); empty for a scalar
 * @param file       the safetensors file holding the data
 * @param dataOffset absolute byte offset of the first data byte within {@code file}
 *                   (8-byte length prefix + header + the tensor's {@code data_offsets[0]})
 * @param byteSize   number of data bytes, {@code elementCount() * dtype.byteSize()}
 */
public record TensorInfo(String name, DType dtype, long[] shape, Path file, long dataOffset, long byteSize) {

    /** Copies the shape so that neither the caller nor a reader can change it afterwards. */
    public TensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(file, "file");
        shape = shape.clone();
    }

    /** @return a copy of the dimensions */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** @return the product of the dimensions (1 for a scalar) */
    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype
                && Arrays.equals(shape, t.shape) && file.equals(t.file)
                && dataOffset == t.dataOffset && byteSize == t.byteSize;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), file, dataOffset, byteSize);
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + " @" + file.getFileName() + "+" + dataOffset
                + " (" + byteSize + " bytes)";
    }
}
