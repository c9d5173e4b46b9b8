// Marks chosen symbol-version needs of an ELF64 little-endian shared object as weak (VER_FLG_WEAK in
// .gnu.version_r), so the dynamic loader only warns instead of refusing to load the library when the
// system library lacks that version. Used for TorchSharp's libLibTorchSharp.so, which asks for
// GLIBCXX_3.4.32 only because of std::ios_base_library_init, a symbol it never calls (no relocation
// refers to it). Compiled into the build as an MSBuild inline task and into the tests as plain code.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
#if !RETINANET_TESTS
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
#endif

namespace RetinaNet.Build
{
    public static class ElfVersionPatcher
    {
        const uint ShtGnuVerneed = 0x6ffffffe;
        const ushort VerFlagWeak = 0x2;

        /// <summary>Sets VER_FLG_WEAK on every version need named in <paramref name="versions"/>.
        /// Returns the names that were changed (empty when already weak: the patch is idempotent).
        /// Throws <see cref="InvalidDataException"/> for anything that is not an ELF64 LE file.</summary>
        public static List<string> MarkWeak(byte[] elf, IReadOnlyCollection<string> versions)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException("only 64-bit little-endian ELF files are supported");
            ulong shoff = U64(elf, 0x28);
            int shentsize = U16(elf, 0x3a), shnum = U16(elf, 0x3c);
            var changed = new List<string>();
            for (int s = 0; s < shnum; s++)
            {
                int sh = Checked(elf, shoff + (ulong)(s * shentsize), 64);
                if (U32(elf, sh + 4) != ShtGnuVerneed) continue;
                int offset = Checked(elf, U64(elf, sh + 0x18), 16);
                int link = (int)U32(elf, sh + 0x28);
                int strtab = Checked(elf, U64(elf, Checked(elf, shoff + (ulong)(link * shentsize), 64) + 0x18), 1);
                int need = offset;
                while (true)
                {
                    int count = U16(elf, Checked(elf, (ulong)need, 16) + 2);
                    int aux = need + (int)U32(elf, need + 8);
                    for (int a = 0; a < count; a++)
                    {
                        Checked(elf, (ulong)aux, 16);
                        string name = CString(elf, strtab + (int)U32(elf, aux + 8));
                        ushort flags = U16(elf, aux + 4);
                        if (versions.Contains(name) && (flags & VerFlagWeak) == 0)
                        {
                            flags |= VerFlagWeak;
                            elf[aux + 4] = (byte)flags;
                            elf[aux + 5] = (byte)(flags >> 8);
                            changed.Add(name);
                        }
                        uint nextAux = U32(elf, aux + 12);
                        if (nextAux == 0) break;
                        aux += (int)nextAux;
                    }
                    uint next = U32(elf, need + 12);
                    if (next == 0) break;
                    need += (int)next;
                }
            }
            return changed;
        }

        /// <summary>Patches a file in place, rewriting only the flag bytes that change. Returns the changed names.</summary>
        public static List<string> MarkWeakInFile(string path, IReadOnlyCollection<string> versions)
        {
            byte[] original = File.ReadAllBytes(path);
            byte[] patched = (byte[])original.Clone();
            var changed = MarkWeak(patched, versions);
            if (changed.Count == 0) return changed;
            using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
            for (int i = 0; i < patched.Length; i++)
            {
                if (patched[i] == original[i]) continue;
                file.Position = i;
                file.WriteByte(patched[i]);
            }
            return changed;
        }

        static int Checked(byte[] b, ulong offset, int size)
        {
            if (offset + (ulong)size > (ulong)b.Length) throw new InvalidDataException("truncated ELF file");
            return (int)offset;
        }
        static ushort U16(byte[] b, int o) => (ushort)(b[o] | b[o + 1] << 8);
        static uint U32(byte[] b, int o) => BitConverter.ToUInt32(b, o);
        static ulong U64(byte[] b, int o) => BitConverter.ToUInt64(b, o);
        static string CString(byte[] b, int o)
        {
            int end = Array.IndexOf(b, (byte)0, o);
            if (end < 0) throw new InvalidDataException("unterminated string in ELF string table");
            return Encoding.ASCII.GetString(b, o, end - o);
        }
    }

#if !RETINANET_TESTS
    /// <summary>MSBuild task: marks Versions weak in each of Files that exists.</summary>
    public class MarkElfVersionsWeak : Task
    {
        [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();
        [Required] public string Versions { get; set; } = "";

        public override bool Execute()
        {
            var versions = Versions.Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries).Select(v => v.Trim()).ToArray();
            foreach (var item in Files)
            {
                string path = item.ItemSpec;
                if (!File.Exists(path)) continue;
                try
                {
                    var changed = ElfVersionPatcher.MarkWeakInFile(path, versions);
                    if (changed.Count > 0)
                        Log.LogMessage(MessageImportance.Normal, $"{path}: marked {string.Join(", ", changed)} weak");
                }
                catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
                {
                    Log.LogError($"{path}: cannot mark ELF version needs weak: {e.Message}");
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
