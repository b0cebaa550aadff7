// The reference-player harness page (pytomo/lab/reference.py): loads one player, plays the stream muted at 1x and
// keeps the player's own account in window.__pytomo: samples every 100 ms, element and library events, renditions.
// Times are wall-clock milliseconds (performance.timeOrigin + performance.now()); Python puts them on the origin.
"use strict";

(function () {
  const config = JSON.parse(new URLSearchParams(location.search).get("config"));
  const video = document.getElementById("video");
  const account = {samples: [], frames: [], events: [], renditions: [], errors: [], sourceBuffers: [], ready: false,
                   version: null, started_ms: null};
  window.__pytomo = account;
  const now = () => performance.timeOrigin + performance.now();
  const frame = {media_time_s: null, presented_ms: null, presented_frames: null};
  // A live stream's position as the library itself maps it: the wall-clock date of the playhead (from
  // EXT-X-PROGRAM-DATE-TIME or the MPD's availability times) and the library's own latency figure; set by each start.
  let live = () => ({date_ms: null, latency_s: null});
  const finite = (x) => (typeof x === "number" && Number.isFinite(x) ? x : null);

  // Every SourceBuffer the library makes, with its MIME type, so that video and audio buffers can be told apart.
  for (const Source of [window.MediaSource, window.ManagedMediaSource]) {
    if (!Source) continue;
    const add = Source.prototype.addSourceBuffer;
    Source.prototype.addSourceBuffer = function (mime) {
      const buffer = add.call(this, mime);
      account.sourceBuffers.push({mime: String(mime), buffer: buffer, source: this});
      return buffer;
    };
  }

  function event(source, name, detail) {
    account.events.push({t_ms: now(), source: source, name: name, detail: detail === undefined ? null : detail});
  }

  function rendition(source, r) {
    account.renditions.push({t_ms: now(), source: source, bitrate_bps: r.bitrate_bps ?? null,
                             width: r.width ?? null, height: r.height ?? null, id: r.id == null ? null : String(r.id)});
  }

  function ranges(buffered) {
    const out = [];
    try {
      for (let i = 0; i < buffered.length; i++) out.push([buffered.start(i), buffered.end(i)]);
    } catch (e) { /* a SourceBuffer removed from its MediaSource */ }
    return out;
  }

  function ahead(list, t) {
    for (const [start, end] of list) {
      if (start <= t + 0.1 && t < end) return end - t;  // 0.1 s: the gap tolerance of the players' own checks
    }
    return 0;
  }

  function sourceBufferAhead(kind, t) {
    let found = null;
    for (const sb of account.sourceBuffers) {
      const mime = sb.mime.toLowerCase();
      const isKind = kind === "video" ? mime.startsWith("video/") : mime.startsWith("audio/");
      if (!isKind || sb.source.readyState === "closed") continue;
      let list;
      try { list = ranges(sb.buffer.buffered); } catch (e) { continue; }
      found = Math.max(found ?? 0, ahead(list, t));
    }
    return found;
  }

  function sample() {
    const t = video.currentTime;
    const element = ranges(video.buffered);
    const quality = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    account.samples.push({
      t_ms: now(), current_time_s: t, paused: video.paused, ended: video.ended, ready_state: video.readyState,
      network_state: video.networkState, playback_rate: video.playbackRate,
      buffered: element, buffer_ahead_s: ahead(element, t),
      video_buffer_ahead_s: sourceBufferAhead("video", t), audio_buffer_ahead_s: sourceBufferAhead("audio", t),
      total_video_frames: quality ? quality.totalVideoFrames : null,
      dropped_video_frames: quality ? quality.droppedVideoFrames : null,
      frame_media_time_s: frame.media_time_s, frame_presented_ms: frame.presented_ms,
      presented_frames: frame.presented_frames, video_width: video.videoWidth, video_height: video.videoHeight,
      ...liveNow(),
    });
  }

  function liveNow() {
    try {
      const l = live();
      return {live_date_ms: finite(l.date_ms), library_latency_s: finite(l.latency_s)};
    } catch (e) {
      return {live_date_ms: null, library_latency_s: null};
    }
  }

  function onFrame(nowMs, meta) {
    frame.media_time_s = meta.mediaTime;
    frame.presented_ms = performance.timeOrigin + (meta.presentationTime || nowMs);
    frame.presented_frames = meta.presentedFrames;
    account.frames.push([frame.presented_ms, meta.mediaTime, meta.presentedFrames]);
    video.requestVideoFrameCallback(onFrame);
  }

  for (const name of ["loadstart", "loadedmetadata", "loadeddata", "canplay", "canplaythrough", "play", "playing",
                      "waiting", "stalled", "pause", "seeking", "seeked", "ended", "error", "emptied",
                      "ratechange"]) {
    video.addEventListener(name, () => {
      const detail = name === "error" && video.error ? {code: video.error.code, message: video.error.message} : null;
      if (detail) account.errors.push(`video element: ${detail.code} ${detail.message}`);
      event("element", name, detail);
    });
  }
  let lastHeight = 0;
  video.addEventListener("resize", () => {
    if (video.videoHeight !== lastHeight) {
      lastHeight = video.videoHeight;
      rendition("picture", {width: video.videoWidth, height: video.videoHeight});
    }
  });

  // Which representation to play: "auto" (the library's own choice), "lowest", "highest" or an index into the
  // renditions sorted by bitrate, lowest first.
  function pick(list, bitrateOf) {
    const sorted = list.slice().sort((a, b) => bitrateOf(a) - bitrateOf(b));
    if (config.rendition === "lowest") return sorted[0];
    if (config.rendition === "highest") return sorted[sorted.length - 1];
    return sorted[Math.min(Number(config.rendition), sorted.length - 1)];
  }
  const fixed = config.rendition !== "auto";

  // The video representations' bandwidths of a manifest as dash.js parsed it (MANIFEST_LOADED's data).
  function dashVideoBandwidths(manifest) {
    const list = (x) => (x == null ? [] : Array.isArray(x) ? x : [x]);
    const out = [];
    for (const period of list(manifest && manifest.Period)) {
      for (const set of list(period.AdaptationSet)) {
        for (const rep of list(set.Representation)) {
          const kind = String(set.contentType || set.mimeType || rep.mimeType || "");
          if (kind.startsWith("video") && rep.bandwidth) out.push(Number(rep.bandwidth));
        }
      }
    }
    return out;
  }

  function startDashjs() {
    const player = dashjs.MediaPlayer().create();
    account.version = player.getVersion();
    const E = dashjs.MediaPlayer.events;
    if (fixed) {
      const initial = config.rendition === "highest" ? 1e9 : 1;  // kbit/s: the highest or the lowest at start
      player.updateSettings({streaming: {abr: {autoSwitchBitrate: {video: false}, initialBitrate: {video: initial}}}});
    }
    for (const name of ["BUFFER_EMPTY", "BUFFER_LOADED", "BUFFER_LEVEL_STATE_CHANGED", "PLAYBACK_STALLED",
                        "PLAYBACK_WAITING", "PLAYBACK_PLAYING", "PLAYBACK_STARTED", "PLAYBACK_ENDED",
                        "QUALITY_CHANGE_REQUESTED", "QUALITY_CHANGE_RENDERED", "STREAM_INITIALIZED", "ERROR",
                        "PLAYBACK_ERROR", "MANIFEST_LOADED"]) {
      player.on(E[name], (e) => {
        const detail = {mediaType: e.mediaType ?? null, state: e.state ?? null};
        if (e.newRepresentation) {
          detail.bitrate_bps = e.newRepresentation.bandwidth;
          detail.height = e.newRepresentation.height;
        }
        if (e.error) {
          detail.error = `${e.error.code ?? ""} ${e.error.message ?? e.error}`;
          account.errors.push(`dash.js: ${detail.error}`);
        }
        event("dashjs", name, detail);
        if (name === "MANIFEST_LOADED" && fixed) {  // an index: start on it (initialBitrate, kbit/s, before streams)
          const bandwidths = dashVideoBandwidths(e.data);
          if (bandwidths.length && !["lowest", "highest"].includes(config.rendition)) {
            const want = pick(bandwidths, (b) => b);
            player.updateSettings({streaming: {abr: {initialBitrate: {video: want / 1000 + 0.5}}}});
          }
        }
        if (name === "QUALITY_CHANGE_RENDERED" && e.mediaType === "video" && e.newRepresentation) {
          const r = e.newRepresentation;
          rendition("dashjs", {bitrate_bps: r.bandwidth, width: r.width, height: r.height, id: r.id});
        }
        if (name === "STREAM_INITIALIZED") {
          const reps = player.getRepresentationsByType("video");
          const current = player.getCurrentRepresentationForType("video");
          if (current) rendition("dashjs", {bitrate_bps: current.bandwidth, width: current.width,
                                            height: current.height, id: current.id});
          if (fixed && reps.length) {
            const want = pick(reps, (r) => r.bandwidth);
            if (!current || want.id !== current.id) player.setRepresentationForTypeByIndex("video", want.index, true);
          }
        }
      });
    }
    live = () => (player.isDynamic() ? {date_ms: player.timeAsUTC() * 1000, latency_s: player.getCurrentLiveLatency()}
                                     : {date_ms: null, latency_s: null});
    player.initialize(video, config.url, true);
    video.muted = true;
  }

  async function startShaka() {
    shaka.polyfill.installAll();
    const player = new shaka.Player();
    account.version = shaka.Player.version;
    live = () => {
      if (!player.isLive()) return {date_ms: null, latency_s: null};
      const date = player.getPlayheadTimeAsDate();
      return {date_ms: date ? date.getTime() : null, latency_s: player.getStats().liveLatency};
    };
    await player.attach(video);
    if (fixed) {
      // The first variant is chosen from the bandwidth estimate before anything is fetched: for highest and lowest
      // make that choice the asked one (a switch after load() fetches the first segments twice, and Shaka's HLS
      // parser has already fetched a segment of the first variant by then).
      const first = {highest: 1e12, lowest: 1}[config.rendition];
      player.configure({abr: first ? {enabled: false, defaultBandwidthEstimate: first, useNetworkInformation: false}
                                   : {enabled: false}});
    }
    const active = () => player.getVariantTracks().find((t) => t.active);
    const note = () => {
      const t = active();
      if (t) rendition("shaka", {bitrate_bps: t.videoBandwidth || t.bandwidth, width: t.width, height: t.height,
                                 id: t.id});
    };
    for (const name of ["buffering", "adaptation", "variantchanged", "loaded", "loading", "stalldetected",
                        "gapjumped", "error", "manifestparsed", "trackschanged", "ratechange"]) {
      player.addEventListener(name, (e) => {
        const detail = {};
        if (name === "buffering") detail.buffering = e.buffering;
        if (name === "error" && e.detail) {
          detail.error = `${e.detail.code} ${e.detail.message || ""}`;
          account.errors.push(`shaka: ${detail.error}`);
        }
        event("shaka", name, detail);
        if (name === "adaptation" || name === "variantchanged") note();
      });
    }
    try {
      await player.load(config.url);
    } catch (e) {
      account.errors.push(`shaka: load failed: ${e.code ?? ""} ${e.message ?? e}`);
      event("shaka", "error", {error: String(e.code ?? e)});
      return;
    }
    note();
    if (fixed) {
      const want = pick(player.getVariantTracks(), (t) => t.bandwidth);
      if (want && !want.active) player.selectVariantTrack(want, true);
      note();
    }
    video.play().catch((e) => account.errors.push(`play(): ${e}`));
  }

  function startHlsjs() {
    const hls = new Hls();
    account.version = Hls.version;
    live = () => {
      const details = hls.latestLevelDetails;
      if (!details || !details.live) return {date_ms: null, latency_s: null};
      const date = hls.playingDate;
      return {date_ms: date ? date.getTime() : null, latency_s: hls.latency};
    };
    const E = Hls.Events;
    hls.on(E.MANIFEST_PARSED, (_n, data) => {
      event("hlsjs", "MANIFEST_PARSED", {levels: data.levels.length});
      if (fixed) {
        const want = pick(data.levels.map((l, i) => ({i: i, b: l.bitrate})), (l) => l.b);
        hls.startLevel = want.i;
        hls.currentLevel = want.i;  // manual: autoLevelEnabled is false from here on
      }
    });
    hls.on(E.LEVEL_SWITCHED, (_n, data) => {
      const level = hls.levels[data.level];
      event("hlsjs", "LEVEL_SWITCHED", {level: data.level});
      if (level) rendition("hlsjs", {bitrate_bps: level.bitrate, width: level.width, height: level.height,
                                     id: data.level});
    });
    for (const name of ["LEVEL_SWITCHING", "BUFFER_APPENDED", "BUFFER_EOS", "FRAG_BUFFERED", "FRAG_CHANGED"]) {
      hls.on(E[name], (_n, data) => {
        const detail = {};
        if (data && data.frag) {
          detail.type = data.frag.type;
          detail.level = data.frag.level;
          detail.sn = data.frag.sn;
        }
        if (data && data.type) detail.type = data.type;
        event("hlsjs", name, detail);
      });
    }
    hls.on(E.ERROR, (_n, data) => {
      event("hlsjs", data.details, {type: data.type, fatal: data.fatal});  // BUFFER_STALLED_ERROR and the like
      if (data.fatal) account.errors.push(`hls.js: ${data.type} ${data.details}`);
    });
    hls.loadSource(config.url);
    hls.attachMedia(video);
    video.play().catch((e) => account.errors.push(`play(): ${e}`));
  }

  function startNative() {
    account.version = navigator.userAgent.match(/Chrom(e|ium)\/([\d.]+)/)?.[2] ?? null;
    video.src = config.url;
    video.play().catch((e) => account.errors.push(`play(): ${e}`));
  }

  video.muted = true;
  video.defaultPlaybackRate = 1;
  video.playbackRate = 1;
  video.autoplay = true;
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
  sample();
  setInterval(sample, 100);
  account.started_ms = now();
  try {
    const start = {dashjs: startDashjs, shaka: startShaka, hlsjs: startHlsjs, native: startNative}[config.player];
    Promise.resolve(start()).catch((e) => account.errors.push(`harness: ${e}`));
  } catch (e) {
    account.errors.push(`harness: ${e}`);
  }
  account.ready = true;
})();
