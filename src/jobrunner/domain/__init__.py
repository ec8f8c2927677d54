"""Pure domain code: job lifecycle, models, retry and share arithmetic. No I/O."""
