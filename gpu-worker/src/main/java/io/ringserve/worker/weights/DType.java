package io.ringserve.worker.weights;

import java.nio.file.Path;
import java.util.Set;

/** Element types this worker can load from safetensors files. */
public enum DType {
    /** bfloat16: the upper half of an IEEE-754 float32. */
    BF16(2),
    /** IEEE-754 binary16. */
    F16(2),
    /** IEEE-754 binary32. */
    F32(4);

    /** Names defined by the safetensors format that this worker does not load. */
    private static final Set<String> KNOWN_UNSUPPORTED = Set.of(
            "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
            "I16", "U16", "I32", "U32", "I64", "U64", "F64", "C64");

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    /** @return bytes per element */
    public int byteSize() {
        return byteSize;
    }

    /**
     * Parses a safetensors {@code dtype} string.
     *
     * @param s      the dtype as written in the header, e.g. {@code "BF16"}
     * @param file   the file the header came from (for the error message)
     * @param tensor the tensor the dtype belongs to (for the error message)
     * @return the dtype
     * @throws WeightsException if the dtype is not BF16, F16 or F32
     */
    public static DType parse(String s, Path file, String tensor) {
        if (s != null) {
            switch (s) {
                case "BF16" -> { return BF16; }
                case "F16" -> { return F16; }
                case "F32" -> { return F32; }
                default -> { }
            }
        }
        String kind = s != null && KNOWN_UNSUPPORTED.contains(s) ? "unsupported" : "unknown";
        throw new WeightsException(file + ": tensor '" + tensor + "' has " + kind + " dtype '" + s
                + "' (supported: BF16, F16, F32)");
    }
}
