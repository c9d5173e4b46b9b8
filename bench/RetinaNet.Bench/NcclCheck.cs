using System.Diagnostics;
using System.Globalization;
using RetinaNet.Distributed;
using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Bench;

/// <summary><c>RetinaNet.Bench nccl-check [--gpus N] [--mb 140]</c>: the multi-GPU building blocks on the GPU machine
/// before any training. Started plainly it launches one rank per GPU (the product's launcher); each rank joins through
/// the rendezvous, connects NCCL on its GPU, and checks all-reduce (sum and average, fp32 and bf16), broadcast and
/// all-gather against values computed by hand; then rank 0 times an fp32 all-reduce average of --mb megabytes (about
/// ResNet50-FPN's flat gradient buffer) and prints one JSON line.</summary>
static class NcclCheck
{
    public static int Run(string[] args, Func<string, string, string> option)
    {
        var me = LaunchEnvironment.Read(LaunchEnvironment.Current(), null);
        if (me is null)
        {
            int gpus = int.Parse(option("gpus", cuda.device_count().ToString(CultureInfo.InvariantCulture)),
                CultureInfo.InvariantCulture);
            return LocalLauncher.Run(SelfCommand.Current(), args, gpus, MasterEndpoint.FreeLocalPort(),
                TimeSpan.FromSeconds(20), Console.Error, "nccl-check");
        }
        var device = new Device(DeviceType.CUDA, me.LocalRank ?? 0);
        CudaDevice.SetCurrent(device.index);
        using var group = ProcessGroup.Start(me, new NcclProvider(), device,
            new WatchdogOptions(TimeSpan.FromSeconds(60), Posix.HardExit));
        int w = me.WorldSize, r = me.Rank;
        var problems = new List<string>();
        void Expect(string what, Tensor actual, float[] expected)
        {
            var got = actual.to(ScalarType.Float32).cpu().data<float>().ToArray();
            if (!got.SequenceEqual(expected))
                problems.Add($"{what}: got [{string.Join(", ", got.Take(4))}...], " +
                    $"expected [{string.Join(", ", expected.Take(4))}...]");
        }
        using (var scope = NewDisposeScope())
        {
            using Scalar rank = r.ToScalar(), rankPlusOne = (r + 1).ToScalar(), twice = (2 * (r + 1)).ToScalar();
            var sum = full(1000, rankPlusOne, ScalarType.Float32, device);
            group.AllReduce(sum, ReduceOp.Sum);
            Expect("all-reduce sum", sum, Enumerable.Repeat(w * (w + 1) / 2f, 1000).ToArray());
            var mean = full(1000, twice, ScalarType.Float32, device);
            group.AllReduce(mean, ReduceOp.Average);
            Expect("all-reduce average", mean, Enumerable.Repeat((float)(w + 1), 1000).ToArray());
            var half = full(64, rankPlusOne, ScalarType.BFloat16, device);
            group.AllReduce(half, ReduceOp.Sum);
            Expect("bf16 all-reduce", half, Enumerable.Repeat(w * (w + 1) / 2f, 64).ToArray());
            var from0 = r == 0 ? Scalars.Arange(10, ScalarType.Float32, device) : zeros(10, ScalarType.Float32, device);
            group.Broadcast(from0);
            Expect("broadcast", from0, Enumerable.Range(0, 10).Select(i => (float)i).ToArray());
            var gathered = group.AllGather(full(3, rank, ScalarType.Int64, device));
            Expect("all-gather", gathered,
                Enumerable.Range(0, w).SelectMany(k => Enumerable.Repeat((float)k, 3)).ToArray());
            var bad = tensor(new long[] { problems.Count }).to(device);
            group.AllReduce(bad, ReduceOp.Sum);
            foreach (var p in problems) Console.Error.WriteLine($"nccl-check: rank {r}: {p}");
            if (bad.cpu().item<long>() > 0) { group.Finish(); return 1; }
        }

        double mb = double.Parse(option("mb", "140"), CultureInfo.InvariantCulture);
        using var buffer = randn((long)(mb * 1e6 / 4), device: device);
        for (int i = 0; i < 5; i++) group.AllReduce(buffer, ReduceOp.Average);
        cuda.synchronize(device);
        const int timed = 20;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < timed; i++) group.AllReduce(buffer, ReduceOp.Average);
        cuda.synchronize(device);
        double ms = clock.Elapsed.TotalMilliseconds / timed;
        double algbw = mb * 1e6 / (ms / 1e3) / 1e9;
        if (group.IsMaster)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"bench\": \"nccl\", \"ranks\": {w}, \"nccl_version\": {NcclLibrary.Version}, " +
                $"\"checks\": \"ok\", \"allreduce_avg_fp32_mb\": {mb}, \"ms\": {ms:F3}, \"algbw_gbs\": {algbw:F1}, " +
                $"\"busbw_gbs\": {algbw * 2 * (w - 1) / w:F1}}}"));
        group.Finish();
        return 0;
    }
}
