package io.ringserve.worker.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Runs the kernels of an {@link CudaDevice#emulated} device on the CPU: each launch calls {@code rs_emu_<kernel>} in
 * {@code lib<file>.so}, the kernel file compiled with the CPU emulator ({@code src/test/cuda/emu/cuemu.h}: every CUDA
 * thread of a block a host thread, blocks one after another) by {@code build-emulator.sh}, which Maven runs before
 * the tests into the directory named by the system property {@value #DIRECTORY}. Arguments are passed as the
 * driver would get them: a buffer as the address of its host memory, Integer/Long/Float by value.
 *
 * <p>What it proves: the CUDA runner's buffers, offsets, copies, launch order and graph replays compute what the
 * reference computes (values, not just shapes). What it cannot: speed, and races that only a real warp schedule
 * exposes. One launch runs at a time in the process (the emulator's block state is global).
 */
final class CpuKernels implements Kernel.Launcher {
    /** System property: the directory of the emulator's libraries. */
    static final String DIRECTORY = "ringserve.cuda.emulator";
    private static final FunctionDescriptor ENTRY = FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            ADDRESS);
    private static final Object ONE_AT_A_TIME = new Object();
    private static final Map<String, SymbolLookup> LIBRARIES = new HashMap<>();
    private final Map<String, MethodHandle> entries = new HashMap<>();
    private final Path dir;

    private CpuKernels(Path dir) {
        this.dir = dir;
    }

    /** Why the emulator cannot run here, or null when it can. */
    static String unavailable() {
        String d = System.getProperty(DIRECTORY);
        if (d == null) {
            return "no CPU kernel emulator: system property " + DIRECTORY + " is not set";
        }
        Path p = Path.of(d);
        if (!Files.isRegularFile(p.resolve("librmsnorm.so"))) {
            return "no CPU kernel emulator in " + p + " (build-emulator.sh found no C++20 compiler?)";
        }
        return null;
    }

    /** A device whose kernels run here; fails when {@link #unavailable()}. */
    static CudaDevice device() {
        String why = unavailable();
        if (why != null) {
            throw new IllegalStateException(why);
        }
        return CudaDevice.emulated(new CpuKernels(Path.of(System.getProperty(DIRECTORY))));
    }

    @Override
    public void launch(Kernel k, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes, Object[] args) {
        MethodHandle entry = entry(k.name());
        synchronized (ONE_AT_A_TIME) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment values = arena.allocate(8L * Math.max(1, args.length), 8);
                MemorySegment pointers = arena.allocate(ADDRESS, Math.max(1, args.length));
                for (int i = 0; i < args.length; i++) {
                    MemorySegment slot = values.asSlice(8L * i, 8);
                    switch (args[i]) {
                        case null -> slot.set(JAVA_LONG, 0, 0L);
                        case DeviceBuffer b -> {
                            MemorySegment memory = b.hostMemory();
                            if (memory == null) {
                                throw new IllegalArgumentException(k.name() + ": argument " + i + " is a buffer of another device");
                            }
                            slot.set(ADDRESS, 0, memory);
                        }
                        case Integer v -> slot.set(JAVA_INT, 0, v);
                        case Long v -> slot.set(JAVA_LONG, 0, v);
                        case Float v -> slot.set(JAVA_FLOAT, 0, v);
                        default -> throw new IllegalArgumentException(k.name() + ": argument " + i + " is a " + args[i].getClass().getName());
                    }
                    pointers.setAtIndex(ADDRESS, i, slot);
                }
                entry.invokeExact(gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, pointers);
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(k.name() + ": " + t, t);
            }
        }
    }

    private synchronized MethodHandle entry(String name) {
        MethodHandle h = entries.get(name);
        if (h == null) {
            int dot = name.indexOf('.');
            String file = name.substring(0, dot);
            String symbol = "rs_emu_" + name.substring(dot + 1);
            SymbolLookup lib;
            synchronized (LIBRARIES) {
                lib = LIBRARIES.computeIfAbsent(file, f -> SymbolLookup.libraryLookup(dir.resolve("lib" + f + ".so"), Arena.global()));
            }
            MemorySegment address = lib.find(symbol).orElseThrow(() -> new IllegalArgumentException("lib" + file + ".so has no " + symbol));
            h = Linker.nativeLinker().downcallHandle(address, ENTRY);
            entries.put(name, h);
        }
        return h;
    }
}
