"""torch + CompressAI models. Importing CompressAI triggers torch's FutureWarning about
torch.jit.script (CompressAI decorates functions with it); it is noise for our users, so it
is silenced here, once, before any model module imports CompressAI."""

import warnings

warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
