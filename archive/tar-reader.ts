// A small synchronous tar stream reader over node-tar's Header and Pax decoders. Ours rather than
// tar.Parser so that the caller sees every entry (devices and hard links included, to refuse them),
// stops wherever it wants (restore preview), and gets no stream machinery per entry.
import { Header, Pax, type HeaderData } from 'tar';
import { ArchiveError } from './errors.ts';
import { errorMessage } from './error-message.ts';

export interface TarEntryHeader {
  /** as stored (after PAX / GNU long-name overrides) */
  path: string;
  /** node-tar's type name: File, Directory, SymbolicLink, Link, CharacterDevice, … */
  type: string;
  size: number;
  mode: number;
  mtime: Date | undefined;
  linkpath: string;
}

export interface TarHandlers {
  entry(h: TarEntryHeader): void;
  data(chunk: Buffer): void;
  entryEnd(): void;
}

const META_TYPES = new Set(['ExtendedHeader', 'GlobalExtendedHeader', 'NextFileHasLongPath', 'NextFileHasLongLinkpath', 'OldGnuLongPath']);
const MAX_META = 1 << 20;

export class TarReader {
  private state: 'header' | 'body' | 'meta' | 'pad' | 'eof' = 'header';
  private hdr = Buffer.alloc(512);
  private hdrUsed = 0;
  private remain = 0;
  private padRemain = 0;
  private zeroBlocks = 0;
  private meta: Buffer[] = [];
  private metaType = '';
  private ex: HeaderData | undefined;
  private gex: HeaderData | undefined;
  private exPath: string | undefined;
  private exLink: string | undefined;
  /** bytes of tar stream consumed */
  offset = 0;
  constructor(private h: TarHandlers) {}

  get ended(): boolean {
    return this.state === 'eof';
  }

  write(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const avail = chunk.length - pos;
      switch (this.state) {
        case 'eof':
          // bytes after the end-of-archive marker (record padding) are ignored, as tar does
          this.offset += avail;
          return;
        case 'header': {
          const n = Math.min(512 - this.hdrUsed, avail);
          chunk.copy(this.hdr, this.hdrUsed, pos, pos + n);
          this.hdrUsed += n;
          pos += n;
          this.offset += n;
          if (this.hdrUsed === 512) {
            this.hdrUsed = 0;
            this.header();
          }
          break;
        }
        case 'body': {
          const n = Math.min(this.remain, avail);
          if (this.metaType) this.meta.push(Buffer.from(chunk.subarray(pos, pos + n)));
          else this.h.data(chunk.subarray(pos, pos + n));
          this.remain -= n;
          pos += n;
          this.offset += n;
          if (this.remain === 0) this.bodyDone();
          break;
        }
        case 'pad': {
          const n = Math.min(this.padRemain, avail);
          this.padRemain -= n;
          pos += n;
          this.offset += n;
          if (this.padRemain === 0) this.state = 'header';
          break;
        }
        default:
          throw new Error('unreachable');
      }
    }
  }

  /** Throws when the stream stopped before the end-of-archive marker. */
  end(): void {
    if (this.state !== 'eof') {
      throw new ArchiveError('truncated', `the archive is cut short (its tar data ends at byte ${this.offset}, inside ${this.state === 'header' && this.hdrUsed === 0 ? 'no entry, before the end marker' : 'an entry'}): the file is incomplete; use another backup`, undefined, 'tar');
    }
  }

  private header(): void {
    const start = this.offset - 512;
    if (this.hdr.every((b) => b === 0)) {
      if (++this.zeroBlocks === 2) this.state = 'eof';
      return;
    }
    if (this.zeroBlocks > 0) throw new ArchiveError('corrupt', `tar data continues after an end-of-archive block at byte ${start}: the file is damaged`, undefined, 'tar');
    let header: Header;
    try {
      header = new Header(this.hdr, 0, this.ex, this.gex);
    } catch (e) {
      throw new ArchiveError('corrupt', `unreadable tar header at byte ${start}: ${errorMessage(e)}`, undefined, 'tar');
    }
    if (!header.cksumValid) throw new ArchiveError('corrupt', `tar header checksum mismatch at byte ${start}: the file is damaged`, undefined, 'tar');
    const size = header.size ?? 0;
    if (!Number.isSafeInteger(size) || size < 0) throw new ArchiveError('corrupt', `bad entry size in the tar header at byte ${start}`, undefined, 'tar');
    const type = header.type;
    if (META_TYPES.has(type)) {
      if (size > MAX_META) throw new ArchiveError('corrupt', `oversized tar extended header at byte ${start}`, undefined, 'tar');
      this.metaType = type;
      this.meta = [];
      this.remain = size;
      this.padRemain = pad(size);
      if (size === 0) this.bodyDone();
      else this.state = 'body';
      return;
    }
    this.exPath = this.ex?.path;
    this.exLink = this.ex?.linkpath;
    this.ex = undefined;
    this.metaType = '';
    this.h.entry({
      // node-tar's Header prepends the ustar prefix even to a PAX path, and ignores a PAX linkpath
      path: this.exPath ?? this.gex?.path ?? header.path ?? '',
      type,
      size,
      mode: header.mode ?? 0,
      mtime: header.mtime,
      linkpath: this.exLink ?? this.gex?.linkpath ?? header.linkpath ?? '',
    });
    this.remain = size;
    this.padRemain = pad(size);
    if (size === 0) this.bodyDone();
    else this.state = 'body';
  }

  private bodyDone(): void {
    if (this.metaType) {
      const body = Buffer.concat(this.meta).toString('utf8');
      this.meta = [];
      if (this.metaType === 'ExtendedHeader') this.ex = Pax.parse(body, this.ex, false);
      else if (this.metaType === 'GlobalExtendedHeader') this.gex = Pax.parse(body, this.gex, true);
      else if (this.metaType === 'NextFileHasLongLinkpath') this.ex = { ...this.ex, linkpath: body.replace(/\0.*/s, '') };
      else this.ex = { ...this.ex, path: body.replace(/\0.*/s, '') };
      this.metaType = '';
    } else {
      this.h.entryEnd();
    }
    this.state = this.padRemain > 0 ? 'pad' : 'header';
  }
}

const pad = (size: number) => (512 - (size % 512)) % 512;
