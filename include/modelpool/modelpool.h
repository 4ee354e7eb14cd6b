#ifndef MODELPOOL_MODELPOOL_H_
#define MODELPOOL_MODELPOOL_H_

// The public API of modelpool, in one include.

#include "modelpool/base/bytes.h"
#include "modelpool/base/clock.h"
#include "modelpool/base/device.h"
#include "modelpool/base/dtype.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/model_folder.h"
#include "modelpool/base/settings.h"
#include "modelpool/base/status.h"
#include "modelpool/devices/device_inventory.h"
#include "modelpool/devices/memory_governor.h"
#include "modelpool/managers/embedding_model_manager.h"
#include "modelpool/managers/summarization_model_manager.h"
#include "modelpool/models/embedding_model.h"
#include "modelpool/models/summarization_model.h"
#include "modelpool/models/torch_types.h"
#include "modelpool/pool/abstract_model_manager.h"
#include "modelpool/pool/lease.h"
#include "modelpool/pool/model_pool.h"
#include "modelpool/pool/pool_sizing.h"
#include "modelpool/pool/pool_stats.h"
#include "modelpool/text/tokenizer.h"
#include "modelpool/workers/generic_worker_pool.h"
#include "modelpool/workers/job.h"
#include "modelpool/workers/ordered_stream.h"
#include "modelpool/workers/worker_pool.h"
#include "modelpool/workers/worker_pool_stats.h"
#include "modelpool/workers/worker_settings.h"

#endif  // MODELPOOL_MODELPOOL_H_
