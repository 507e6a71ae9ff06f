/**
 * Subscribers to an event, for the Secret sinks' change notices. A listener that throws is
 * skipped: its failure must not undo or hide the completed write being announced.
 */
export class Listeners<T> {
  private readonly set = new Set<(v: T) => void>();

  /** Adds a listener; the returned function removes it. */
  add(listener: (v: T) => void): () => void {
    this.set.add(listener);
    return () => this.set.delete(listener);
  }

  emit(v: T): void {
    for (const l of this.set) {
      try {
        l(v);
      } catch {
        // see the class comment
      }
    }
  }
}
