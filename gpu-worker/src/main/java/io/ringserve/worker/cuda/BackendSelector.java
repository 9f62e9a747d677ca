package io.ringserve.worker.cuda;

import java.util.Locale;

/**
 * Decides which compute backend runs: the answer to {@code --backend auto|cpu|cuda} (CLI) and
 * {@code ringserve.worker.backend} (service), in one place.
 * <ul>
 *   <li>{@code cpu}: the float32 reference forward pass; the CUDA driver is not touched.</li>
 *   <li>{@code auto}: CUDA when {@link CudaProbe} finds a usable GPU and this build has the kernels; otherwise
 *       the CPU, with the reason in {@link Choice#reason()}.</li>
 *   <li>{@code cuda}: CUDA or an {@link IllegalArgumentException} whose one-line message says why not.</li>
 * </ul>
 * Callers open a {@link CudaBackend} when {@link Choice#backend()} is {@link Backend#CUDA}.
 */
public final class BackendSelector {

    private BackendSelector() {
    }

    /** What was asked for. */
    public enum Requested {
        AUTO, CPU, CUDA;

        /** {@code auto}, {@code cpu} or {@code cuda}, any case. */
        public static Requested parse(String s) {
            try {
                return valueOf(s.strip().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("backend must be auto, cpu or cuda, got '" + s + "'", e);
            }
        }
    }

    /** What runs. */
    public enum Backend {
        CPU, CUDA
    }

    /**
     * @param backend   the backend to run
     * @param reason    one line on why, for the log: the GPU used, or why the CPU
     * @param gpuUnused a usable GPU was found and is not used (worth telling a CLI user; a GPU-less machine is not news)
     */
    public record Choice(Backend backend, String reason, boolean gpuUnused) {
    }

    /**
     * Selects the backend, probing the GPU unless the CPU was asked for.
     *
     * @throws IllegalArgumentException for {@code cuda} that cannot run here, with the reason in one line
     */
    public static Choice select(Requested requested) {
        return select(requested, requested == Requested.CPU ? null : CudaProbe.probe());
    }

    static Choice select(Requested requested, CudaProbe.Probe probe) {
        return switch (requested) {
            case CPU -> new Choice(Backend.CPU, "cpu was requested", false);
            case AUTO -> {
                if (!probe.ready()) {
                    yield new Choice(Backend.CPU, "no usable GPU: " + probe.whyNotReady(), probe.usable());
                }
                yield new Choice(Backend.CUDA, probe.describe(), false);
            }
            case CUDA -> {
                if (!probe.ready()) {
                    throw new IllegalArgumentException("cuda was requested, but " + probe.whyNotReady());
                }
                yield new Choice(Backend.CUDA, probe.describe(), false);
            }
        };
    }
}
