package io.ringserve.worker.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.LongConsumer;
import jcuda.driver.CUevent;

/**
 * The CUDA backend of one worker: GPU 0, the model's weights on it and the {@link CudaRunner} over them. What the
 * CLI and the worker service open when {@link BackendSelector} chooses CUDA; closing it frees the GPU.
 */
public final class CudaBackend implements AutoCloseable {
    private final CudaDevice device;
    private final CudaWeights weights;
    private final CudaRunner runner;

    private CudaBackend(CudaDevice device, CudaWeights weights) {
        this.device = device;
        this.weights = weights;
        this.runner = new CudaRunner(device, weights);
    }

    /** Loads the safetensors checkpoint in {@code modelDir} onto GPU 0. */
    public static CudaBackend load(Path modelDir, ModelConfig config, LongConsumer progress) {
        return load(modelDir, config, LayerRange.all(config.numHiddenLayers()), progress);
    }

    /** Loads the tensors of a pipeline shard holding {@code layers} onto GPU 0. */
    public static CudaBackend load(Path modelDir, ModelConfig config, LayerRange layers, LongConsumer progress) {
        CudaDevice device = CudaDevice.open(0);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(modelDir)) {
            CudaWeights weights = CudaWeights.load(device, config, ckpt, layers, progress);
            return new CudaBackend(device, weights);
        } catch (RuntimeException e) {
            device.close();
            throw e;
        }
    }

    /** Seeded random weights of {@code config}'s shape written on GPU 0 (no checkpoint). */
    public static CudaBackend dummy(ModelConfig config, long seed) {
        return dummy(config, LayerRange.all(config.numHiddenLayers()), seed);
    }

    /** The seeded random weights of a pipeline shard holding {@code layers} on GPU 0: the whole model's values there. */
    public static CudaBackend dummy(ModelConfig config, LayerRange layers, long seed) {
        CudaDevice device = CudaDevice.open(0);
        try {
            return new CudaBackend(device, CudaWeights.dummy(device, config, layers, seed));
        } catch (RuntimeException e) {
            device.close();
            throw e;
        }
    }

    public CudaDevice device() {
        return device;
    }

    public CudaWeights weights() {
        return weights;
    }

    public CudaRunner runner() {
        return runner;
    }

    /** GPU memory in use now (weights, KV cache, activations, context), as the driver reports it. */
    public long memoryUsed() {
        device.makeCurrent();
        return device.totalMemory() - device.freeMemory();
    }

    /**
     * Device-to-device copy bandwidth in bytes/s, read plus write (the measure the roofline fractions use): the median of
     * {@code repeats} copies of {@code bytes} between two buffers, timed with events.
     */
    public double copyBandwidth(long bytes, int repeats) {
        device.makeCurrent();
        try (DeviceBuffer a = device.alloc(bytes); DeviceBuffer b = device.alloc(bytes)) {
            a.fill((byte) 1);
            CUevent start = new CUevent();
            CUevent stop = new CUevent();
            cuEventCreate(start, 0);
            cuEventCreate(stop, 0);
            try {
                double[] seconds = new double[repeats];
                for (int r = -1; r < repeats; r++) { // r = -1 warms up
                    cuEventRecord(start, device.stream());
                    cuMemcpyDtoDAsync(b.ptr(), a.ptr(), bytes, device.stream());
                    cuEventRecord(stop, device.stream());
                    cuEventSynchronize(stop);
                    float[] ms = new float[1];
                    cuEventElapsedTime(ms, start, stop);
                    if (r >= 0) {
                        seconds[r] = ms[0] / 1e3;
                    }
                }
                Arrays.sort(seconds);
                return 2.0 * bytes / seconds[repeats / 2];
            } finally {
                cuEventDestroy(start);
                cuEventDestroy(stop);
            }
        }
    }

    @Override
    public void close() {
        try {
            runner.close();
            weights.close();
        } finally {
            device.close();
        }
    }
}
