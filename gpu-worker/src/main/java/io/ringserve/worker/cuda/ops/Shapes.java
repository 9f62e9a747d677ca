package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.DeviceBuffer;

/** Preconditions the kernel wrappers check before a launch: a kernel that runs past a buffer corrupts memory silently. */
final class Shapes {
    private Shapes() {
    }

    /** Fails unless {@code b} holds at least {@code bytes}. */
    static void require(String op, String name, DeviceBuffer b, long bytes) {
        if (b == null) {
            throw new IllegalArgumentException(op + ": " + name + " is null");
        }
        if (b.bytes() < bytes) {
            throw new IllegalArgumentException(op + ": " + name + " has " + b.bytes() + " bytes, needs " + bytes);
        }
    }

    /** The most blocks a launch may have along grid y or z. */
    static final int MAX_GRID_YZ = 65535;

    /** Fails unless {@code 1 <= value <= MAX_GRID_YZ}: {@code value} becomes a grid y or z dimension of one launch. */
    static void gridYZ(String op, String name, int value) {
        positive(op, name, value);
        if (value > MAX_GRID_YZ) {
            throw new IllegalArgumentException(op + ": at most " + MAX_GRID_YZ + " " + name + " per launch (a grid dimension), got " + value);
        }
    }

    static void positive(String op, String name, int value) {
        if (value < 1) {
            throw new IllegalArgumentException(op + ": " + name + " must be >= 1, got " + value);
        }
    }

    static int ceilDiv(long a, int b) {
        long q = (a + b - 1) / b;
        if (q > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("grid of " + q + " blocks");
        }
        return (int) q;
    }
}
