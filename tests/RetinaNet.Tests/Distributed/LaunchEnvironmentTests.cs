using RetinaNet.Distributed;
using Xunit;

namespace RetinaNet.Tests.Distributed;

/// <summary>Rank and world discovery from the variables torchrun, SLURM and our launcher set.</summary>
public class LaunchEnvironmentTests
{
    static RankAssignment? Read(MasterEndpoint? master = null, params (string Name, string Value)[] vars) =>
        LaunchEnvironment.Read(vars.ToDictionary(v => v.Name, v => (string?)v.Value), master);

    [Fact]
    public void NoLauncherVariablesMeansAProcessOfItsOwn()
    {
        Assert.Null(Read());
        // srun's variables alone (no master address) are not a job of ours: e.g. a plain command inside an allocation
        Assert.Null(Read(null, ("SLURM_PROCID", "0"), ("SLURM_NTASKS", "4")));
    }

    [Fact]
    public void TorchrunVariables()
    {
        var r = Read(null, ("RANK", "5"), ("WORLD_SIZE", "8"), ("LOCAL_RANK", "1"), ("LOCAL_WORLD_SIZE", "4"),
            ("MASTER_ADDR", "node7"), ("MASTER_PORT", "1234"))!;
        Assert.Equal((5, 8, 1, 4), (r.Rank, r.WorldSize, r.LocalRank, r.LocalWorldSize));
        Assert.Equal(new MasterEndpoint("node7", 1234), r.Master);
        Assert.False(r.IsMaster);
    }

    [Fact]
    public void SlurmVariablesWithAMasterAddress()
    {
        var r = Read(null, ("SLURM_PROCID", "3"), ("SLURM_NTASKS", "4"), ("SLURM_LOCALID", "1"),
            ("SLURM_NTASKS_PER_NODE", "2"), ("MASTER_ADDR", "10.0.0.1"))!;
        Assert.Equal((3, 4, 1, 2), (r.Rank, r.WorldSize, r.LocalRank, r.LocalWorldSize));
        Assert.Equal(new MasterEndpoint("10.0.0.1", 29500), r.Master); // torchrun's default port
        // ODTK's --master supplies the address as well, and wins over MASTER_ADDR/MASTER_PORT
        var withOption = Read(new MasterEndpoint("head", 4000), ("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2"),
            ("MASTER_ADDR", "other"), ("MASTER_PORT", "1"))!;
        Assert.Equal(new MasterEndpoint("head", 4000), withOption.Master);
        // an uneven layout ("2(x3),1") gives no per-node count
        Assert.Null(Read(null, ("SLURM_PROCID", "0"), ("SLURM_NTASKS", "7"), ("SLURM_NTASKS_PER_NODE", "2(x3),1"),
            ("MASTER_ADDR", "h"))!.LocalWorldSize);
    }

    [Fact]
    public void RankVariablesWinOverSlurmAndLocalRankMayComeFromSlurm()
    {
        var r = Read(null, ("RANK", "1"), ("WORLD_SIZE", "2"), ("SLURM_PROCID", "0"), ("SLURM_NTASKS", "8"),
            ("SLURM_LOCALID", "1"))!;
        Assert.Equal((1, 2, 1), (r.Rank, r.WorldSize, r.LocalRank));
        Assert.Equal(new MasterEndpoint("127.0.0.1", 29500), r.Master);
        Assert.Null(Read(null, ("RANK", "0"), ("WORLD_SIZE", "1"))!.LocalRank);
    }

    [Theory]
    [InlineData("RANK", "2", "WORLD_SIZE", "2", "RANK=2: expected an integer in 0..1 (WORLD_SIZE=2")]
    [InlineData("RANK", "-1", "WORLD_SIZE", "2", "RANK=-1")]
    [InlineData("RANK", "0", "WORLD_SIZE", "zero", "WORLD_SIZE=zero: expected a positive number")]
    [InlineData("RANK", "0", "WORLD_SIZE", "0", "WORLD_SIZE=0")]
    [InlineData("RANK", "0", "MASTER_ADDR", "h", "RANK is set but WORLD_SIZE is not")]
    [InlineData("WORLD_SIZE", "2", "MASTER_PORT", "99999", "MASTER_PORT=99999: expected a port number")]
    [InlineData("WORLD_SIZE", "2", "LOCAL_RANK", "1", "WORLD_SIZE is set but RANK is not")]
    public void BadValuesAreOneLineNamingTheVariable(string name1, string value1, string name2, string value2,
        string expected)
    {
        var e = Assert.Throws<DistributedSetupException>(() => Read(null, (name1, value1), (name2, value2)));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("10.1.2.3:29501", "10.1.2.3", 29501)]
    [InlineData("node-a.cluster:80", "node-a.cluster", 80)]
    [InlineData("[fe80::1]:29500", "fe80::1", 29500)]
    public void MasterEndpointParses(string text, string host, int port)
    {
        var m = MasterEndpoint.Parse(text, "--master");
        Assert.Equal((host, port), (m.Host, m.Port));
        Assert.Equal(text, m.ToString());
    }

    [Theory]
    [InlineData("29500")]
    [InlineData("host:")]
    [InlineData(":29500")]
    [InlineData("host:0")]
    [InlineData("host:65536")]
    public void MasterEndpointRejects(string text) =>
        Assert.Contains("--master: expected address:port",
            Assert.Throws<DistributedSetupException>(() => MasterEndpoint.Parse(text, "--master")).Message);
}
